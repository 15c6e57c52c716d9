"""The `rignet` command's start: what runs before TensorFlow is imported.

`rignet_keras` imports Keras (and so TensorFlow) when it is imported, which is what registers
its classes for `keras.models.load_model`. The command line cannot start there: `rignet --help`
must answer at once, and TensorFlow's import-time log lines must be held back before
TensorFlow is imported. This package does both, and imports `rignet_keras` only to run a
command:

    commands         the sub-commands and their one-line summaries, and the top-level parser
    launcher         the `rignet` entry point: `--help`, TensorFlow's log level, then the command
    tensorflow_logs  TensorFlow's C++ log lines for a command: off unless asked for
    import_hooks     running code around the first import of a module (a `sys.meta_path` finder)

Nothing here changes the process when it is imported: the launcher and the scripts
(`recipes/`, `export/`, `bench/`) call `quiet_tensorflow()` for their own process.
"""
