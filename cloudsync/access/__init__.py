"""Who can read what: the access report (model, builder, renderers)."""
