"""The arena: Bradley-Terry ratings of policies (`ratings`, pure maths), live battles between them (`battles`),
and the leaderboard's plots (`plots`)."""
