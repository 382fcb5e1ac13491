"""The example feature. Copy this folder to add one: router, schemas, models, repository…"""
