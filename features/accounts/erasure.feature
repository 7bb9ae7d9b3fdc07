Feature: Erasing a customer's personal data
  On request the customer's personal data is crypto-shredded: the account's
  key is destroyed and PersonalDataErased is appended. The personal data is
  unreadable everywhere afterwards, while the history stays whole and its hash
  chains still verify.

  Background:
    Given a new customer "Alice Chan" with email "alice@example.com" and phone "+852 9123 5678"
    And an open account for the customer
    And customer service has changed the customer's email to "alice.chan@example.org"
    And an auditor has noted the account's history

  Scenario: After erasure no read shows the personal data
    When an administrator erases the customer's personal data
    Then the request succeeds with status 200
    And the erasure answers erased true
    And the account's personal data is erased
    And customer service sees no personal data when reading the account
    And marketing sees no personal data when reading the account
    And an auditor sees no personal data when reading the account at version 1
    And an auditor sees no personal data in the account's history

  Scenario: The history stays complete and verifiable after erasure
    When an administrator erases the customer's personal data
    Then the account's history still holds every noted event with the same hashes
    And the last event in the account's history is "PersonalDataErased" with
      | field  | value   |
      | reason | request |
    And the last event in the account's history was recorded by an administrator
    And the account's history is an unbroken hash chain
    And the ledger's hash chains verify

  Scenario: Erasing again answers that nothing was left to erase
    Given an administrator has erased the customer's personal data
    When an administrator erases the customer's personal data
    Then the request succeeds with status 200
    And the erasure answers erased false
    And the account is at version 3
    And the ledger's hash chains verify

  Scenario: Erased details can no longer be updated
    Given an administrator has erased the customer's personal data
    When customer service updates the customer's email to "back@example.com"
    Then the request is refused with status 409
    And the problem detail mentions "erased"
    And the account is at version 3
    And customer service sees no personal data when reading the account

  Scenario: Erased details can no longer be confirmed
    Given an administrator has erased the customer's personal data
    When customer service confirms the customer's details are unchanged
    Then the request is refused with status 409
    And the problem detail mentions "erased"
    And the account is at version 3
