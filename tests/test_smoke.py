async def test_greeting(checkstack_client, checkstack_auth):
    client = checkstack_client()
    assert await client.call("hello", "getGreeting", {"name": "Ann"}) == {"message": "Hello, Ann!"}
    admin = checkstack_client(checkstack_auth.admin())
    assert await admin.call("hello", "setGreeting", {"template": "Hi {name}"}) == {"template": "Hi {name}"}
    assert await client.call("hello", "getGreeting", {}) == {"message": "Hi world"}
