Feature: Periodic analysis per segment
  Marketing and management follow each customer segment period by period:
  how many accounts it holds at the start and at the end of the period, how
  many were opened and closed in it, how many moved in from or out to another
  segment, new against lost, and its churn (the accounts lost in the period
  over the segment's size at its start). An account counts in the segment it
  was in at the time, so a move shows as a migration, not as a loss. Periods
  are days, weeks (from Monday), months or quarters of the business time of
  each event; the first and last period are cut to the range asked for.

  Background:
    Given these accounts were opened
      | customer | segment  | channel | opened on  |
      | Eve      | silver   | store   | 2025-01-10 |
      | Ada      | gold     | store   | 2026-03-05 |
      | Ben      | silver   | online  | 2026-03-10 |
      | Cal      | gold     | app     | 2026-04-02 |
      | Dee      | standard | store   | 2026-04-05 |
    And the account of "Ben" was closed on 2026-04-10
    And the account of "Cal" was moved to segment "vip" on 2026-04-20
    And the read models are up to date

  Scenario: Marketing reads the segments month by month
    When marketing reads the "segment-analysis" report from 2026-03-01 to 2026-05-01 by month
    Then the request succeeds with status 200
    And the report has these rows
      | period_start | segment  | size_at_start | size_at_end | new_customers | lost_customers | migrations_in | migrations_out | new_to_lost_ratio | churn_rate |
      | 2026-03-01   | gold     | 0             | 1           | 1             | 0              | 0             | 0              | null              | null       |
      | 2026-03-01   | silver   | 1             | 2           | 1             | 0              | 0             | 0              | null              | 0.0        |
      | 2026-04-01   | gold     | 1             | 1           | 1             | 0              | 0             | 1              | null              | 0.0        |
      | 2026-04-01   | silver   | 2             | 1           | 0             | 1              | 0             | 0              | 0.0               | 0.5        |
      | 2026-04-01   | standard | 0             | 1           | 1             | 0              | 0             | 0              | null              | null       |
      | 2026-04-01   | vip      | 0             | 1           | 0             | 0              | 1             | 0              | null              | null       |

  Scenario: Management looks at one segment only
    When management reads the "segment-analysis" report from 2026-04-01 to 2026-05-01 by month for segment "silver"
    Then the request succeeds with status 200
    And the report has these rows
      | period_start | period_end | segment | size_at_start | size_at_end | lost_customers | churn_rate |
      | 2026-04-01   | 2026-05-01 | silver  | 2             | 1           | 1              | 0.5        |

  Scenario: Week by week, the first and the last week are cut to the range
    When marketing reads the "segment-analysis" report from 2026-04-01 to 2026-04-15 by week
    Then the request succeeds with status 200
    And the report has these rows
      | period_start | period_end | segment  | size_at_start | size_at_end | new_customers | lost_customers |
      | 2026-04-01   | 2026-04-06 | gold     | 1             | 2           | 1             | 0              |
      | 2026-04-01   | 2026-04-06 | silver   | 2             | 2           | 0             | 0              |
      | 2026-04-01   | 2026-04-06 | standard | 0             | 1           | 1             | 0              |
      | 2026-04-06   | 2026-04-13 | gold     | 2             | 2           | 0             | 0              |
      | 2026-04-06   | 2026-04-13 | silver   | 2             | 1           | 0             | 1              |
      | 2026-04-06   | 2026-04-13 | standard | 1             | 1           | 0             | 0              |
      | 2026-04-13   | 2026-04-15 | gold     | 2             | 2           | 0             | 0              |
      | 2026-04-13   | 2026-04-15 | silver   | 1             | 1           | 0             | 0              |
      | 2026-04-13   | 2026-04-15 | standard | 1             | 1           | 0             | 0              |

  Scenario: Marketing downloads the analysis for a spreadsheet
    When marketing downloads the "segment-analysis" report from 2026-04-01 to 2026-05-01 as CSV
    Then the download is CSV with the header "period_start,period_end,segment,size_at_start,size_at_end,new_customers,lost_customers,migrations_in,migrations_out,new_to_lost_ratio,churn_rate"
    And the download has these lines
      | line                                             |
      | 2026-04-01,2026-05-01,gold,1,1,1,0,0,1,,0.0      |
      | 2026-04-01,2026-05-01,silver,2,1,0,1,0,0,0.0,0.5 |
      | 2026-04-01,2026-05-01,standard,0,1,1,0,0,0,,     |
      | 2026-04-01,2026-05-01,vip,0,1,0,0,1,0,,          |

  Scenario Outline: A request the analysis cannot answer is refused: <case>
    When marketing reads the "segment-analysis" report with <parameters>
    Then the request is refused with status 422
    And the problem detail mentions "<mentions>"

    Examples:
      | case                  | parameters                                     | mentions               |
      | unknown segment       | from=2026-04-01&to=2026-05-01&segment=platinum | segment must be one of |
      | unknown channel       | from=2026-04-01&to=2026-05-01&channel=fax      | channel must be one of |
      | unknown period        | from=2026-04-01&to=2026-05-01&period=year      | period                 |
      | from after to         | from=2026-05-01&to=2026-04-01                  | must be before         |
      | not a date            | from=1st-April&to=2026-05-01                   | from                   |
      | split of the analysis | from=2026-04-01&to=2026-05-01&split=segment    | cannot be split        |
