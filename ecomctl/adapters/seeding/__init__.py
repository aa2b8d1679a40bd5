"""What ``ecomctl seed`` needs from the backends: bulk COPY into PostgreSQL, the search index
rebuilt from what was committed, the shop's Redis keys cleared and the product cache warmed,
per-table checksums; and the connections, with their errors translated. The seed package
generates the rows and runs these steps in order; it never talks to a driver itself."""
