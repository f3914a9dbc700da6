raise RuntimeError("this DAG file is broken on purpose")
