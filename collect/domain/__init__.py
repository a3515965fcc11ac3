"""collect's pure logic: answers and their labels, campaign specs, simulated raters, quality maths; no I/O here."""
