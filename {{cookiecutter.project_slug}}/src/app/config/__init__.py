"""What settings are built from: the shared base, the value checks and the secret screen."""
