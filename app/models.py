"""Every table of every package, imported so that one metadata knows them all."""

from familymap import audit_tables
from familymap import tables as familymap_tables
from familymap.orm import Base
from vouchers import tables as voucher_tables
from wallet import bank_tables as wallet_bank_tables
from wallet import offer_tables as wallet_offer_tables
from wallet import outbox_tables as wallet_outbox_tables
from wallet import tables as wallet_tables

metadata = Base.metadata

__all__ = [
    "audit_tables",
    "familymap_tables",
    "metadata",
    "voucher_tables",
    "wallet_bank_tables",
    "wallet_offer_tables",
    "wallet_outbox_tables",
    "wallet_tables",
]
