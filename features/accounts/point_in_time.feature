Feature: Reading an account as it stood
  Auditors read an account as it stood at a version, or as the ledger had
  recorded it at a moment, and read its whole history with who did what.

  Background:
    Given a new customer "Alice Chan" with email "alice@example.com"
    And an open account for the customer
    And customer service has changed the customer's email to "alice.chan@example.org"
    And customer service has moved the account to segment "gold"

  Scenario: An auditor reads the account as it was opened
    When an auditor reads the account at version 1
    Then the request succeeds with status 200
    And they see the account at version 1
    And they see the customer's email as "alice@example.com"
    And they see the account in segment "standard"

  Scenario: An auditor reads the account between two changes
    When an auditor reads the account at version 2
    Then the request succeeds with status 200
    And they see the account at version 2
    And they see the customer's email as "alice.chan@example.org"
    And they see the account in segment "standard"

  Scenario: An auditor reads the account as of the moment a version was recorded
    When an auditor reads the account as of the moment version 2 was recorded
    Then the request succeeds with status 200
    And they see the account at version 2
    And they see the account in segment "standard"

  Scenario: An auditor reads the account as of the moment it was opened
    When an auditor reads the account as of the moment version 1 was recorded
    Then the request succeeds with status 200
    And they see the account at version 1
    And they see the customer's email as "alice@example.com"

  Scenario: An auditor reads the account as of now
    When an auditor reads the account as of now
    Then the request succeeds with status 200
    And they see the account at version 3
    And they see the account in segment "gold"

  Scenario: Before it was opened the account did not exist
    When an auditor reads the account as of a minute before it was opened
    Then the request is refused with status 404
    And the problem detail mentions "did not exist"

  Scenario: A version the account never reached does not exist
    When an auditor reads the account at version 9
    Then the request is refused with status 404
    And the problem detail mentions "no version 9"

  Scenario: A version and a moment together are refused
    When an auditor reads the account at version 1 and as of now
    Then the request is refused with status 400
    And the problem detail mentions "not both"

  Scenario: A moment without a time zone is refused
    When an auditor reads the account as of "2025-06-01T10:00:00"
    Then the request is refused with status 422
    And the problem detail mentions "time zone"

  Scenario: Customer service may also read the account as it stood
    When customer service reads the account at version 1
    Then the request succeeds with status 200
    And they see the customer's email as "alice@example.com"

  Scenario: An auditor reads the whole history with who did what
    When an auditor reads the account's history
    Then the request succeeds with status 200
    And they see the events
      | version | event          |
      | 1       | AccountOpened  |
      | 2       | DetailsUpdated |
      | 3       | SegmentChanged |
    And every event they see names its actor, department and source
    And they see the customer's details in clear in the opening event
    And the account's history is an unbroken hash chain
