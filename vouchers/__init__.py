"""Non-cashable vouchers: school meals and medicines. Stands on familymap and wallet."""
