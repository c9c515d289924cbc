"""What comes in: input files read as chunks cut at safe boundaries, checks on what the
user names, the downloader, and the generated demo corpus."""
