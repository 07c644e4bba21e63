"""The console face: the chat loop, and the rendering it shares with `newsbot ask`."""
