"""Plain Python behind the suite: the target model, probes, judging, evidence, redaction, procedures.
No pytest imports here, so the sandbox tooling and scripts can use it too."""
