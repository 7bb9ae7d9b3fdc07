Feature: Recording service activities
  Purchases, refunds, visits, inquiries, complaints and feedback are recorded
  on the account; they feed the service performance indicators.

  Scenario Outline: Record a <activity> on the account
    Given an open account
    When customer service records a "<activity>" activity
    Then the request succeeds with status 201
    And they see the account at version 2
    And the last event in the account's history is "<event>"
    And the last event in the account's history was recorded by customer service

    Examples:
      | activity         | event            |
      | purchase         | PurchaseRecorded |
      | refund           | RefundRecorded   |
      | visit            | VisitRecorded    |
      | inquiry_opened   | InquiryOpened    |
      | complaint_lodged | ComplaintLodged  |
      | feedback         | FeedbackGiven    |

  Scenario: A purchase records its amount, cost, currency and store
    Given an open account
    When customer service records a purchase of 120.50 HKD costing 80.00 at store "TST-01"
    Then the request succeeds with status 201
    And the last event in the account's history is "PurchaseRecorded" with
      | field    | value  |
      | amount   | 120.50 |
      | cost     | 80.00  |
      | currency | HKD    |
      | store    | TST-01 |

  Scenario: A refund records the amount given back
    Given an open account
    When customer service records a refund of 20.00 HKD costing 12.00 at store "TST-01"
    Then the request succeeds with status 201
    And the last event in the account's history is "RefundRecorded" with
      | field  | value |
      | amount | 20.00 |
      | cost   | 12.00 |

  Scenario: A purchase needs a positive amount
    Given an open account
    When customer service records a purchase of -5.00 HKD costing 1.00 at store "TST-01"
    Then the request is refused with status 422
    And the account is at version 1

  Scenario: A visit records its channel and place
    Given an open account
    When customer service records a visit through the "app" channel at "mobile app"
    Then the request succeeds with status 201
    And the last event in the account's history is "VisitRecorded" with
      | field    | value      |
      | channel  | app        |
      | location | mobile app |

  Scenario: An inquiry is opened and then answered
    Given an open account
    When customer service records an inquiry "Q-7" about "delivery" through the "phone" channel
    Then the request succeeds with status 201
    And the open inquiries of the account are "Q-7"
    When customer service records the answer to inquiry "Q-7" through the "online" channel
    Then the request succeeds with status 201
    And the open inquiries of the account are ""
    And the last event in the account's history is "InquiryAnswered" with
      | field      | value    |
      | inquiry_id | Q-7      |
      | topic      | delivery |
      | channel    | online   |

  Scenario: Answering an inquiry that is not open is refused
    Given an open account
    When customer service records the answer to inquiry "Q-404" through the "phone" channel
    Then the request is refused with status 409
    And the problem detail mentions "inquiry Q-404 is not open"
    And the account is at version 1

  Scenario: An inquiry is answered only once
    Given an open account
    And an inquiry "Q-8" about "returns" is open on the account
    When customer service records the answer to inquiry "Q-8" through the "phone" channel
    And customer service records the answer to inquiry "Q-8" through the "phone" channel
    Then the request is refused with status 409
    And the account is at version 3

  Scenario: A complaint is lodged and then resolved
    Given an open account
    When customer service records a complaint "C-3" about "late delivery" of "high" severity
    Then the request succeeds with status 201
    And the open complaints of the account are "C-3"
    When customer service records the resolution of complaint "C-3" as "refunded the delivery fee" with the customer satisfied
    Then the request succeeds with status 201
    And the open complaints of the account are ""
    And the last event in the account's history is "ComplaintResolved" with
      | field        | value                     |
      | complaint_id | C-3                       |
      | resolution   | refunded the delivery fee |
      | satisfied    | true                      |

  Scenario: Resolving a complaint that is not open is refused
    Given an open account
    When customer service records the resolution of complaint "C-404" as "apologised" with the customer not satisfied
    Then the request is refused with status 409
    And the problem detail mentions "complaint C-404 is not open"

  Scenario: A complaint needs a known severity
    Given an open account
    When customer service records a complaint "C-5" about "rude staff" of "catastrophic" severity
    Then the request is refused with status 422
    And the account is at version 1

  Scenario: Feedback records the customer's score and comment
    Given an open account
    When customer service records feedback of 5 saying "very helpful"
    Then the request succeeds with status 201
    And the last event in the account's history is "FeedbackGiven" with
      | field   | value        |
      | score   | 5            |
      | comment | very helpful |

  Scenario: Feedback scores run from 1 to 5
    Given an open account
    When customer service records feedback of 6 saying "off the scale"
    Then the request is refused with status 422
    And the account is at version 1
