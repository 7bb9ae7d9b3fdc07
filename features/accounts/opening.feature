Feature: Opening customer accounts
  Customer service opens an account for a customer in one of the segments,
  through the channel the customer came in by. A customer number of a source
  system (the external reference) opens one account only.

  Scenario Outline: Open an account in the <segment> segment through the <channel> channel
    Given a new customer "Alice Chan" with email "alice@example.com"
    When customer service opens an account for the customer in segment "<segment>" through the "<channel>" channel
    Then the account is opened
    And the account is open
    And the account is in segment "<segment>"
    And the account was opened through the "<channel>" channel
    And the account is on service plan "standard"
    And the last event in the account's history is "AccountOpened" with
      | field   | value      |
      | segment | <segment>  |
      | channel | <channel>  |

    Examples: every segment
      | segment   | channel |
      | standard  | store   |
      | silver    | store   |
      | gold      | store   |
      | vip       | store   |
      | corporate | store   |

    Examples: every channel
      | segment  | channel |
      | standard | online  |
      | standard | app     |
      | standard | phone   |

  Scenario: Customer service sees the new account with the customer's details
    Given a new customer "Alice Chan" with email "alice@example.com" and phone "+852 9123 5678"
    When customer service opens an account for the customer in segment "gold" through the "app" channel
    Then the account is opened
    And they see the customer's personal data unmasked
    And the last event in the account's history was recorded by customer service
    And the unmasked read by customer service is written to the access log as "open"

  Scenario: A second account for the same external reference is refused
    Given a new customer "Alice Chan" with email "alice@example.com"
    And an open account for the customer
    When customer service opens another account with the same external reference
    Then the request is refused with status 409
    And the problem is titled "Duplicate"
    And the problem detail mentions "external_ref"
    And the account is at version 1

  Scenario: Repeating an opening with the same Idempotency-Key answers the first response
    Given a new customer "Alice Chan" with email "alice@example.com"
    When customer service opens an account for the customer with Idempotency-Key "open-1"
    And customer service repeats the opening with the same Idempotency-Key
    Then the repeated opening is answered with the first response
    And the account is at version 1

  Scenario: An unknown segment is refused when opening
    Given a new customer "Alice Chan" with email "alice@example.com"
    When customer service opens an account for the customer in segment "platinum" through the "store" channel
    Then the request is refused with status 422
    And the problem detail mentions "segment must be one of"
    And no account was opened for the customer

  Scenario: An unknown channel is refused when opening
    Given a new customer "Alice Chan" with email "alice@example.com"
    When customer service opens an account for the customer in segment "gold" through the "fax" channel
    Then the request is refused with status 422
    And the problem detail mentions "channel"
    And no account was opened for the customer

  Scenario: An opening dated more than five minutes ahead is refused
    Given a new customer "Alice Chan" with email "alice@example.com"
    When customer service opens an account for the customer dated an hour from now
    Then the request is refused with status 422
    And the problem detail mentions "future"
    And no account was opened for the customer
