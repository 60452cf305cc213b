"""How to probe: one module per kind of component. Each call has a deadline and returns an observation
(what was asked, what came back, how long it took) that the checks judge and the reports show."""
