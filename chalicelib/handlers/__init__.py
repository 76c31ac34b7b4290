"""Lambda handlers other than the API's: Step Functions steps, SNS messages and schedules,
registered in app.py. ("Task" elsewhere means a staff task.)"""
