"""dht: reserved for the BitTorrent issues; the foundation only creates the package."""
