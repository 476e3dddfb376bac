"""Small demo services. They know nothing of the mesh: they listen on $HOST:$PORT and call
other services by name (http://benigno:5000/hello), through $HTTP_PROXY like any app."""
