Feature: Moving accounts between segments and service plans
  Marketing analyses accounts per segment, so a move between segments and
  between service plans is recorded with where it came from and where it went.

  Scenario: Move an account to another segment
    Given an open account in segment "standard"
    When customer service moves the account to segment "gold"
    Then the request succeeds with status 200
    And they see the account in segment "gold"
    And the account is in segment "gold"
    And the last event in the account's history is "SegmentChanged" with
      | field        | value    |
      | from_segment | standard |
      | to_segment   | gold     |

  Scenario: Move an account to another service plan
    Given an open account
    When customer service moves the account to service plan "premium"
    Then the request succeeds with status 200
    And the account is on service plan "premium"
    And the last event in the account's history is "ServicePlanChanged" with
      | field     | value    |
      | from_plan | standard |
      | to_plan   | premium  |

  Scenario: A customer's way through the segments stays in the history
    Given an open account in segment "standard"
    When customer service moves the account to segment "silver"
    And customer service moves the account to segment "vip"
    Then the account is in segment "vip"
    And the account's history lists
      | version | event          |
      | 1       | AccountOpened  |
      | 2       | SegmentChanged |
      | 3       | SegmentChanged |

  Scenario: An unknown segment is refused
    Given an open account in segment "standard"
    When customer service moves the account to segment "platinum"
    Then the request is refused with status 422
    And the problem detail mentions "segment must be one of"
    And the account is in segment "standard"
    And the account is at version 1

  Scenario: Moving an account to the segment it is in is refused
    Given an open account in segment "gold"
    When customer service moves the account to segment "gold"
    Then the request is refused with status 409
    And the problem detail mentions "already in segment gold"
    And the account is at version 1

  Scenario: Moving an account to the plan it is on is refused
    Given an open account
    When customer service moves the account to service plan "standard"
    Then the request is refused with status 409
    And the account is at version 1
