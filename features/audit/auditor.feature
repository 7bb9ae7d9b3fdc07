Feature: Auditors replay and prove the ledger's history
  An auditor reads every event of every account in store order, keeps a ledger
  digest outside the system, and can later prove that nothing up to it changed,
  even when a forger recomputed the per-account hashes.

  Background:
    Given an open account
    And customer service has moved the account to segment "gold"

  Scenario: Replay the whole history page by page
    Given another open account with a recorded visit
    When an auditor replays the event feed three events at a time
    Then every stored event appears once, in store order
    And every replayed event carries its metadata and its hashes

  Scenario: Replay one account's events
    When an auditor replays the event feed of the account
    Then the feed lists "AccountOpened, SegmentChanged" for the account

  Scenario: A tampered event is named by verification
    Given someone has altered the account's stored event at version 2
    When an auditor verifies the ledger
    Then verification fails naming the account at version 2

  Scenario: A kept digest still holds while history only grows
    Given an auditor has kept the ledger digest
    And another open account with a recorded visit
    When the auditor checks the kept digest
    Then the kept digest holds

  Scenario: A kept digest exposes a forgery with recomputed hashes
    Given an auditor has kept the ledger digest
    And someone has rewritten the account's event at version 2 and recomputed its hashes
    When an auditor verifies the account alone
    Then verification passes
    When the auditor checks the kept digest
    Then the kept digest no longer holds

  Scenario: A digest for a position that does not exist is refused
    When an auditor asks for the ledger digest at position 999999999
    Then the request is refused with status 404
