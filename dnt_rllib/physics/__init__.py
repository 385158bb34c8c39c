"""Pure-numpy physics of the paper's network: mobility (eq. 1), rates (eqs. 2-3),
sync-RB choice (eq. 5e), RB allocation by sorting (eqs. 14, 16) and reward (eqs. 15, 17).

Nothing here knows about gymnasium, torch or Ray.
"""
