# A vendored package (python_modules/ -> site-packages), as `flareflow build` ships flareflow itself.
def shout(text):
    return text.upper() + "!"
