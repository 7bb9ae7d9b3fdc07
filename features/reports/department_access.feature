Feature: Each department reads the reports of its own business
  Reports come in the format and detail each department needs, and each
  department sees only its own business: customer service the accounts and
  service figures, marketing the accounts and segments, finance the money,
  management all but the list of accounts to review. Auditors read every
  report. Anyone else is refused with 403, someone without a token with 401,
  both as application/problem+json. Reports hold no personal data. The
  guidelines the scheme review checks are read by every department that reads
  reports, by auditors and administrators.

  Scenario Outline: <role> reads the <report> report
    When <role> reads the "<report>" report
    Then the request succeeds with status 200
    And they see the "<report>" report of the last 90 days

    Examples: customer service
      | role             | report                  |
      | customer service | accounts-summary        |
      | customer service | accounts-due-for-review |
      | customer service | service-kpis            |

    Examples: marketing and finance
      | role      | report            |
      | marketing | accounts-summary  |
      | marketing | segment-analysis  |
      | finance   | financial-summary |

    Examples: management
      | role       | report            |
      | management | accounts-summary  |
      | management | segment-analysis  |
      | management | financial-summary |
      | management | service-kpis      |
      | management | scheme-review     |
      | management | staff-performance |

    Examples: auditors read every report
      | role       | report                  |
      | an auditor | accounts-summary        |
      | an auditor | accounts-due-for-review |
      | an auditor | segment-analysis        |
      | an auditor | financial-summary       |
      | an auditor | service-kpis            |
      | an auditor | scheme-review           |
      | an auditor | staff-performance       |

  Scenario Outline: <role> may not read the <report> report
    When <role> reads the "<report>" report
    Then the request is refused with status 403
    And the problem is titled "Forbidden"
    And the problem detail mentions "roles"

    Examples:
      | role                   | report                  |
      | customer service       | financial-summary       |
      | customer service       | scheme-review           |
      | marketing              | financial-summary       |
      | marketing              | accounts-due-for-review |
      | marketing              | staff-performance       |
      | finance                | accounts-summary        |
      | finance                | segment-analysis        |
      | finance                | service-kpis            |
      | management             | accounts-due-for-review |
      | an administrator       | accounts-summary        |
      | the integration system | service-kpis            |

  Scenario Outline: <caller> is not let in to the reports
    When <caller> reads the "service-kpis" report
    Then the request is refused with status 401
    And the refusal asks for a bearer token

    Examples:
      | caller                        |
      | someone without a token       |
      | someone with a forged token   |
      | someone with an expired token |

  Scenario: A report that does not exist is not found
    When an auditor reads the "everything" report
    Then the request is refused with status 404
    And the problem is titled "Unknown report"
    And the problem detail mentions "scheme-review"

  Scenario Outline: <role> reads the guidelines
    When <role> reads the guidelines
    Then the request succeeds with status 200
    And the guideline "satisfaction" is at least 4.0 by default

    Examples:
      | role             |
      | customer service |
      | marketing        |
      | finance          |
      | management       |
      | an auditor       |
      | an administrator |

  Scenario Outline: <role> may not change the guidelines
    When <role> sets the guideline "satisfaction" to at least 1
    Then the request is refused with status 403
    And the problem is titled "Forbidden"
    And the guideline "satisfaction" is at least 4.0 by default

    Examples:
      | role                   |
      | customer service       |
      | marketing              |
      | finance                |
      | an auditor             |
      | the integration system |

  Scenario: Customer service finds the accounts whose details are due for review
    Given these accounts were opened
      | customer | segment  | channel | opened on  |
      | Eve      | silver   | store   | 2025-01-10 |
      | Fay      | standard | phone   | 2025-02-01 |
      | Gus      | gold     | online  | 2025-02-15 |
      | Ada      | gold     | store   | 2026-03-05 |
    And the details of "Fay" were confirmed on 2026-03-01
    And the account of "Gus" was closed on 2026-03-20
    And the read models are up to date
    When customer service reads the "accounts-due-for-review" report up to 2026-05-01 for 365 days
    Then the request succeeds with status 200
    And the report lists the accounts of "Eve"
    And the report shows no personal data of the customers
    When customer service reads the "accounts-due-for-review" report up to 2026-05-01 for 30 days
    Then the report lists the accounts of "Eve, Fay, Ada"

  Scenario: Customer service works through the accounts due for review a page at a time
    Given these accounts were opened
      | customer | segment  | channel | opened on  |
      | Eve      | silver   | store   | 2025-01-10 |
      | Fay      | standard | phone   | 2025-02-01 |
      | Gus      | gold     | online  | 2025-02-15 |
      | Ada      | gold     | store   | 2026-03-05 |
      | Bea      | silver   | app     | 2026-04-20 |
    And the read models are up to date
    When customer service reads the "accounts-due-for-review" report with to=2026-05-01&days=30&limit=2
    Then the report lists the accounts of "Eve, Fay"
    And the page says 4 accounts are due in all
    When customer service reads the next page
    Then the report lists the accounts of "Gus, Ada"
    And the page says 4 accounts are due in all
    And it is the last page

  Scenario: Finance reads turnover and profit by store and currency
    Given these accounts were opened
      | customer | segment | channel | opened on  |
      | Ada      | gold    | store   | 2026-03-05 |
      | Dee      | silver  | online  | 2026-04-05 |
    And these sales were recorded
      | customer | on         | kind     | amount | cost  | currency | store   |
      | Ada      | 2026-04-03 | purchase | 100.00 | 60.00 | HKD      | central |
      | Ada      | 2026-04-08 | refund   | 10.00  | 6.00  | HKD      | central |
      | Dee      | 2026-04-09 | purchase | 20.00  | 5.00  | USD      | web     |
    And the read models are up to date
    When finance reads the "financial-summary" report from 2026-04-01 to 2026-05-01 by month
    Then the request succeeds with status 200
    And the report has these rows
      | segment | channel | store   | currency | purchases | refunds | turnover | profit |
      | gold    | store   | central | HKD      | 1         | 1       | 90.00    | 36.00  |
      | silver  | online  | web     | USD      | 1         | 0       | 20.00    | 15.00  |
