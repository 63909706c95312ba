print("factorlab")
