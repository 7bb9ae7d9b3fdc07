Feature: Auditors prove the ledger with a kept checkpoint, alone
  An auditor keeps a signed checkpoint (a tree size and the root of the Merkle
  tree over every event) and the verifier key outside the system. With them
  alone they can check that an event is in the ledger, and that today's ledger
  only extends the one they signed off, even when a forger recomputed the
  per-account hashes.

  Background:
    Given an open account
    And customer service has moved the account to segment "gold"

  Scenario: Keep a signed checkpoint
    When an auditor fetches the latest checkpoint and the verifier key
    Then the checkpoint's signature holds under the verifier key
    And the checkpoint covers every event stored so far
    And the same checkpoint can be fetched again by its tree size

  Scenario: Prove an event is in the ledger
    Given an auditor has kept a signed checkpoint
    When the auditor asks for a proof that the account's event at version 2 is in the ledger
    Then the event's own hash holds
    And the proof leads from the event to the kept checkpoint's root

  Scenario: Prove the ledger only grew
    Given an auditor has kept a signed checkpoint
    And another open account with a recorded visit
    When the auditor fetches a newer checkpoint and a proof it extends the kept one
    Then the proof shows the newer ledger extends the kept one

  Scenario: A forged event is not in the ledger the kept checkpoint signs
    Given an auditor has kept a signed checkpoint
    And someone has rewritten the account's event at version 2 and recomputed its hashes
    When the auditor asks for a proof that the account's event at version 2 is in the ledger
    Then the event's own hash holds
    But the proof does not lead from the event to the kept checkpoint's root

  Scenario: A rewritten ledger does not extend the kept checkpoint
    Given an auditor has kept a signed checkpoint
    And someone has rewritten the account's event at version 2, recomputed its hashes and rebuilt the tree
    And another open account with a recorded visit
    When the auditor fetches a newer checkpoint and a proof it extends the kept one
    Then the proof does not show the newer ledger extends the kept one

  Scenario: A proof beyond the tree is refused
    When an auditor asks for a proof against a tree larger than the ledger
    Then the request is refused with status 404
