"""Source folder of an invalid-config test case."""
