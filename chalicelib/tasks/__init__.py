"""Step Functions task handlers, registered in app.py with `@app.lambda_function`."""
