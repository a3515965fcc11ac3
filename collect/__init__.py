"""People in the loop: store, campaigns, candidate generation, scheduling, the rating app, quality, arena, export."""
