"""Resumable uploads (tus 1.0), tenant-scoped, quarantined until a ClamAV scan clears them."""
