"""The guest side: which vCPU touches which page when, and what a stall costs it.

For now the foundation's simple access process (``access``); the full guest model (execution
contexts, spinlocks, RTAS) replaces it without changing the transfer model's interface.
"""
