from course.cli import run

if __name__ == "__main__":  # not when a Dask worker process re-imports the main module
    run()
