"""What a family holds: offers, consent, assignments, payments and the ledger. Stands on familymap."""
