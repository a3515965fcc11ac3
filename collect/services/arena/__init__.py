"""The arena: Bradley-Terry ratings of policies (`ratings`, pure maths), live battles between them (`battles`: start,
follow up, vote; `state`: a battle in memory; `streams`: both answers streaming; `votes`: voted turns in the store;
`identity`: answers naming their own model), and the leaderboard's plots (`plots`)."""
