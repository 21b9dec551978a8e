// Placeholder until the desktop-app issue: the preload will expose exactly the AppApi.
export {}
