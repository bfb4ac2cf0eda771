"""The Gradio web app: a thin layer over the functions the CLI calls."""
