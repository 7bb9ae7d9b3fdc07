Feature: Who may do what with an account
  Tokens carry roles, and each role may do only what the roles matrix allows.
  Without a valid token the answer is 401, with a role that may not it is 403,
  both as application/problem+json. Roles without a need to see personal data
  read it masked; every unmasked read is written to the access log.

  Scenario Outline: <role> may not <action>
    Given an open account
    When <role> tries to <action>
    Then the request is refused with status 403
    And the problem is titled "Forbidden"
    And the problem detail mentions "roles"
    And the account is at version 1

    Examples: managing accounts needs customer service, an administrator or integration
      | role          | action                         |
      | marketing     | open an account                |
      | finance       | update the customer's details  |
      | management    | confirm the customer's details |
      | an auditor    | change the segment             |
      | marketing     | change the service plan        |
      | management    | close the account              |

    Examples: recording activities needs customer service or integration
      | role             | action            |
      | an administrator | record a purchase |
      | marketing        | record a visit    |
      | an auditor       | record feedback   |

    Examples: reading accounts and their past
      | role                   | action                        |
      | the integration system | read the account              |
      | marketing              | read the account's history    |
      | finance                | read the account at version 1 |
      | management             | read the account as of now    |

    Examples: erasure needs an administrator, verification an auditor
      | role             | action                  |
      | customer service | erase the personal data |
      | an auditor       | erase the personal data |
      | customer service | verify the ledger       |
      | management       | verify the ledger       |

  Scenario Outline: <role> may <action>
    Given an open account
    When <role> asks to <action>
    Then the request succeeds with status <status>

    Examples:
      | role                   | action                        | status |
      | the integration system | open an account               | 201    |
      | the integration system | record a purchase             | 201    |
      | an administrator       | change the service plan       | 200    |
      | customer service       | read the account's history    | 200    |
      | an auditor             | read the account at version 1 | 200    |
      | management             | read the account              | 200    |
      | an administrator       | erase the personal data       | 200    |
      | an auditor             | verify the ledger             | 200    |

  Scenario Outline: <caller> is not let in to <action>
    Given an open account
    When <caller> tries to <action>
    Then the request is refused with status 401
    And the refusal asks for a bearer token
    And the account is at version 1

    Examples:
      | caller                        | action                        |
      | someone without a token       | open an account               |
      | someone without a token       | read the account              |
      | someone without a token       | update the customer's details |
      | someone without a token       | record a purchase             |
      | someone without a token       | erase the personal data       |
      | someone without a token       | verify the ledger             |
      | someone with a forged token   | read the account              |
      | someone with an expired token | close the account             |

  Scenario Outline: <role> reads the account with the personal data masked
    Given a new customer "Alice Chan" with email "alice@example.com" and phone "+852 9123 5678"
    And an open account for the customer
    When <role> reads the account
    Then the request succeeds with status 200
    And they see the customer's personal data masked
    And they see the customer's email as "a***@example.com"
    And they see the customer's phone as "****5678"
    And they see the customer's name as "A*** C***"
    And they see the customer's id_document as "****4567"
    And no read by <role> is written to the access log

    Examples:
      | role       |
      | marketing  |
      | finance    |
      | management |

  Scenario Outline: <role> reads the account unmasked, and the read is logged
    Given a new customer "Alice Chan" with email "alice@example.com" and phone "+852 9123 5678"
    And an open account for the customer
    When <role> reads the account
    Then the request succeeds with status 200
    And they see the customer's personal data unmasked
    And they see the customer's email as "alice@example.com"
    And the unmasked read by <role> is written to the access log as "read"

    Examples:
      | role             |
      | customer service |
      | an auditor       |
      | an administrator |
