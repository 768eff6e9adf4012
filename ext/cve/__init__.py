"""CVE scanning for search: an inventory of each image, OSV vulnerability data, stored results."""
