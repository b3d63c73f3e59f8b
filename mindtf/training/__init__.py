"""Training: losses, AdamW, schedules, loss scaling, the compiled step, the Trainer and run
checkpoints. Knows no concrete model: it calls the methods every mindtf model owns.
"""
