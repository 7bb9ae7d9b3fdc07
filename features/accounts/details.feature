Feature: Keeping customer details current
  Customer service updates the customer's details, naming the version it read
  (If-Match), so it never overwrites a change it has not seen. A customer who
  confirms that nothing changed keeps the details current too.

  Scenario: Update the customer's email with the version last read
    Given an open account
    When customer service updates the customer's email to "alice.chan@example.org" with If-Match "1"
    Then the request succeeds with status 200
    And they see the account at version 2
    And they see the customer's email as "alice.chan@example.org"
    And the customer's email is "alice.chan@example.org"
    And the customer's phone is "+852 9123 5678"
    And the account's details are current as of today
    And the last event in the account's history records only a new email

  Scenario: An update naming a stale version is refused
    Given an open account
    And customer service has changed the customer's email to "alice.chan@example.org"
    When customer service updates the customer's phone to "+852 6000 1111" with If-Match "1"
    Then the request is refused with status 412
    And the problem is titled "Stale version"
    And the customer's phone is "+852 9123 5678"
    And the account is at version 2

  Scenario: An If-Match that is not a version is refused
    Given an open account
    When customer service updates the customer's phone to "+852 6000 1111" with If-Match "yesterday"
    Then the request is refused with status 400
    And the account is at version 1

  Scenario: An update without If-Match applies to the current version
    Given an open account
    And customer service has changed the customer's email to "alice.chan@example.org"
    When customer service updates the customer's address to "8 Queen's Road, Central"
    Then the request succeeds with status 200
    And they see the account at version 3
    And the customer's address is "8 Queen's Road, Central"
    And the customer's email is "alice.chan@example.org"

  Scenario: Only the customer's personal fields can be updated
    Given an open account
    When customer service updates the customer's nickname to "Ali"
    Then the request is refused with status 422
    And the problem detail mentions "nickname"
    And the account is at version 1

  Scenario: Periodic confirmation of unchanged details keeps them current
    Given an open account opened on 2024-01-10
    When customer service confirms the customer's details are unchanged on 2025-06-01
    Then the request succeeds with status 200
    And the account's details are current as of 2025-06-01
    And the customer's details are as when the account was opened
    And the account is at version 2
    And the last event in the account's history is "DetailsConfirmed"

  Scenario: A confirmation without a date is dated today
    Given an open account opened on 2024-01-10
    When customer service confirms the customer's details are unchanged
    Then the request succeeds with status 200
    And the account's details are current as of today

  Scenario: A confirmation naming a stale version is refused
    Given an open account
    And customer service has changed the customer's email to "alice.chan@example.org"
    When customer service confirms the customer's details are unchanged with If-Match "1"
    Then the request is refused with status 412
    And the account is at version 2
