Feature: The review of the service scheme against its guidelines
  Management reviews the service scheme: every KPI of the period asked for is
  set against its guideline (met or not, and the deviation, value minus
  target) and against the period of the same length just before it (the
  trend: up, down or flat). Without a target, or without a value, "met" stays
  empty. Targets default to first_response_hours_p90 at most 24,
  complaint_resolution_hours_p90 at most 72, satisfaction at least 4.0,
  churn_rate at most 0.05 and new_to_lost_ratio at least 1.0; management
  changes them, every department that reads reports may read them.

  Background:
    Given these accounts were opened
      | customer | segment | channel | opened on  |
      | Ada      | gold    | store   | 2026-03-05 |
      | Ben      | silver  | online  | 2026-03-10 |
      | Cal      | gold    | app     | 2026-04-02 |
    And these inquiries were answered
      | customer | opened on  | answered after hours | by      |
      | Ben      | 2026-03-12 | 30                   | agent-0 |
      | Ada      | 2026-04-11 | 2                    | agent-0 |
      | Ada      | 2026-04-12 | 4                    | agent-0 |
      | Ada      | 2026-04-13 | 6                    | agent-1 |
      | Ada      | 2026-04-14 | 8                    | agent-1 |
      | Ada      | 2026-04-15 | 10                   | agent-1 |
    And these complaints were resolved
      | customer | lodged on  | resolved after hours | satisfied | by      |
      | Ada      | 2026-04-15 | 24                   | yes       | agent-1 |
      | Cal      | 2026-04-16 | 48                   | no        | agent-1 |
    And these feedback scores were given
      | customer | on         | score |
      | Ben      | 2026-03-13 | 4     |
      | Ada      | 2026-04-18 | 5     |
      | Cal      | 2026-04-18 | 2     |
      | Cal      | 2026-04-19 | 4     |
    And the account of "Ben" was closed on 2026-04-10
    And the read models are up to date

  Scenario: Management reviews April against the default guidelines and against March
    When management reads the "scheme-review" report from 2026-04-01 to 2026-05-01
    Then the request succeeds with status 200
    And the review shows
      | kpi                            | value    | comparison | target | met   | deviation | previous | trend |
      | first_response_hours_p90       | 9.2      | at_most    | 24.0   | true  | -14.8     | 30.0     | down  |
      | first_response_hours_mean      | 6.0      | null       | null   | null  | null      | 30.0     | down  |
      | complaint_resolution_hours_p90 | 45.6     | at_most    | 72.0   | true  | -26.4     | null     | null  |
      | satisfaction                   | 3.666667 | at_least   | 4.0    | false | -0.333333 | 4.0      | down  |
      | churn_rate                     | 0.5      | at_most    | 0.05   | false | 0.45      | null     | null  |
      | new_to_lost_ratio              | 1.0      | at_least   | 1.0    | true  | 0.0       | null     | null  |
      | inquiries                      | 5.0      | null       | null   | null  | null      | 1.0      | up    |
      | complaints                     | 2.0      | null       | null   | null  | null      | 0.0      | up    |
      | turnover                       | 0.0      | null       | null   | null  | null      | 0.0      | flat  |

  Scenario: Management sets a stricter target and the review follows it
    Given management has set the guideline "first_response_hours_p90" to at most 8
    When management reads the "scheme-review" report from 2026-04-01 to 2026-05-01
    Then the review shows
      | kpi                      | value | target | met   | deviation |
      | first_response_hours_p90 | 9.2   | 8.0    | false | 1.2       |
    And the guideline "first_response_hours_p90" is at most 8 as set by management

  Scenario: Management sets a target on a KPI that had none
    Given management has set the guideline "complaints" to at most 1
    When an auditor reads the "scheme-review" report from 2026-04-01 to 2026-05-01
    Then the review shows
      | kpi        | value | comparison | target | met   | deviation |
      | complaints | 2.0   | at_most    | 1.0    | false | 1.0       |

  Scenario: Staff performance shows who answered and resolved, and how fast
    When management reads the "staff-performance" report from 2026-04-01 to 2026-05-01
    Then the request succeeds with status 200
    And the report has these rows
      | actor   | inquiries_answered | complaints_resolved | first_response_hours_mean | complaint_resolution_hours_mean | satisfied_share |
      | agent-0 | 2                  | 0                   | 3.0                       | null                            | null            |
      | agent-1 | 3                  | 2                   | 8.0                       | 36.0                            | 0.5             |

  Scenario: A guideline on a KPI the design does not define is refused
    When management sets the guideline "happiness" to at least 1
    Then the request is refused with status 422
    And the problem detail mentions "unknown KPI: happiness"
