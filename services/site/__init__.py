"""The site: public pages, customer portal and back office, server-rendered in French."""
