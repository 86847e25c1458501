from tests.conftest import login


def test_alice_signs_in_and_lands_on_her_dashboard(client):
    login(client, "alice@example.org")
    page = client.get("/my/")
    assert page.status_code == 200
    assert "Hello, Alice Martin" in page.get_data(as_text=True)
