"""pgGit v0.2.1 through the seam: an adapter; its source comes from MODELCHECK_PGGIT_SRC."""
