"""welcome-pipeline's embedded local cloud: cli, deploy (SAM transform + CloudFormation), emulator (moto,
guarded patches), runtime (the stack's functions, Lambda-style). `pip install -e .` puts the functions'
code root (functions/) on the path, as Lambda puts the CodeUri on its."""
