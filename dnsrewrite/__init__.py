"""dnsrewrite: authoritative cluster.local DNS for a centralized mesh gateway."""

__version__ = "0.1.0"
