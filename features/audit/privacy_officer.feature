Feature: The privacy officer answers for personal data
  The privacy officer (the administrator role) finds what the ledger holds on a
  person, who looked at it, and makes sure it is gone when it must be.

  Scenario: A data access request returns everything held, with its source
    Given a new customer "Bo Wong" with email "bo@example.com"
    And an open account for the customer
    And customer service has changed the customer's email to "bo.wong@example.org"
    When an administrator requests everything held on the customer
    Then the request succeeds with status 200
    And the answer holds the current email "bo.wong@example.org"
    And the answer holds the email "bo@example.com" from the "AccountOpened" event
    And the answer holds the email "bo.wong@example.org" from the "DetailsUpdated" event
    And the access log of the account shows the administrator's "personal-data" request

  Scenario: Only the privacy officer answers data access requests
    Given an open account
    When an auditor requests everything held on the customer
    Then the request is refused with status 403

  Scenario: The access log shows unmasked reads and no masked ones
    Given an open account
    When customer service reads the account
    And marketing reads the account
    Then the access log of the account shows a "read" by customer service
    And the access log of the account shows nothing by marketing

  Scenario: Erasure on request leaves nothing to disclose
    Given an open account
    And an administrator has erased the customer's personal data
    When an administrator requests everything held on the customer
    Then the answer holds no personal data

  Scenario: The retention job erases accounts closed longer than the retention period
    Given an account closed 2600 days ago
    And an account closed today
    When an administrator runs the retention job
    Then the account closed long ago has its personal data erased for "retention"
    And the account closed today keeps its personal data
    When an administrator runs the retention job
    Then the account closed long ago is not erased again

  Scenario: A dry run of the retention job erases nothing
    Given an account closed 2600 days ago
    When an administrator runs the retention job as a dry run
    Then the dry run lists the account closed long ago
    And the account closed long ago keeps its personal data
