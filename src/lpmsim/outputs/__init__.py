"""What a run leaves behind: summary.json and the terminal summary."""
