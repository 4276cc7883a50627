"""The offline demo: real Indiana University reports paired with synthetic radiographs.

Every downstream set is rendered by the same generator and written in its real dataset's on-disk
layout, so the demo exercises the same readers a user's real data goes through.
"""
