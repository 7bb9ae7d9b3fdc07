Feature: Closing accounts
  An account is closed with a reason. A closed account takes no command except
  the erasure of its personal data.

  Scenario: Close an account at the customer's request
    Given an open account
    When customer service closes the account for "customer_request" noting "moving abroad"
    Then the request succeeds with status 200
    And the account is closed
    And the account was closed for "customer_request"
    And the last event in the account's history is "AccountClosed" with
      | field  | value            |
      | reason | customer_request |
      | note   | moving abroad    |

  Scenario: A close reason must be one of the known reasons
    Given an open account
    When customer service closes the account for "bored"
    Then the request is refused with status 422
    And the account is open

  Scenario Outline: A closed account refuses to <command>
    Given an open account
    And the account is closed for "inactivity"
    When customer service tries to <command>
    Then the request is refused with status 409
    And the problem is titled "Account closed"
    And the problem detail mentions "is closed"
    And the account is at version 2

    Examples:
      | command                         |
      | update the customer's details   |
      | confirm the customer's details  |
      | change the segment              |
      | change the service plan         |
      | close the account               |
      | record a purchase               |
      | record a refund                 |
      | record a visit                  |
      | record an inquiry               |
      | record the answer to an inquiry |
      | record a complaint              |
      | record feedback                 |

  Scenario: The personal data of a closed account can still be erased
    Given an open account
    And the account is closed for "inactivity"
    When an administrator erases the customer's personal data
    Then the request succeeds with status 200
    And the erasure answers erased true
    And the account is closed
    And the account's personal data is erased
    And the account is at version 3
