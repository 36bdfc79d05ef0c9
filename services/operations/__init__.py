"""Operations: the « travail bloqué » view for administrators (docs/decisions/0013)."""
