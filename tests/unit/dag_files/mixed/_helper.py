raise RuntimeError("files starting with _ are not DAG files and are never imported")
